<?xml version="1.0" encoding="UTF-8"?>
<!--
  XGewerbeanzeige 2.x Gewerbemeldung → xdomea 3.1.0 FVDaten.SGOAblegen.0605:
  the hub, in the Fachverfahren's role, asks the DMS to file the Meldung
  into the E-Akte. Valid against the xdomea 3.1.0 schema
  (drehscheibe validate - -schema urn:xoev-de:xdomea:schema:3.1.0).

  3.0.0: the output is an xdomea transfer container (rule.toml
  `container = "xdomea"`): the hub packs this message with the
  Primärdokumente it names into `<ProzessID>_FVDaten.SGOAblegen.0605.zip`.
  The original message is the file the hub offers as $ds:payload-file;
  each attachment of the application (names in $ds:attachment-files, one
  per line) becomes one more Dokument of the (first) Vorgang, with the UUID
  the hub derives for it ($ds:attachment-ids).

  Per Meldung (satz) one SchriftgutobjektZumAblegen:
    Akte      = the Gewerbebetrieb   (ID: gewerbebetriebID)
      Vorgang = the Meldung          (ID: the Meldung's uuid)
        Dokument = the original XGewerbeanzeige message
                 (ID: nachrichtenUUID; the DMS assigns its own on 0605)
  If the gewerbebetriebID is not a UUID (xdomea IDs must be), the Vorgang
  is filed on its own, with the Aktenplan key as Ablageort.

  Identifiers and times come from the message, so rendering the same
  message twice gives the same bytes: ProzessID = the (first) Meldung's
  uuid, Erstellungszeitpunkt = the message's erstellungszeitpunkt.
  Parameters: see rule.toml.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:xdomea="urn:xoev-de:xdomea:schema:3.1.0"
    xmlns:ds="urn:x-drehscheibe:rule"
    exclude-result-prefixes="ds">

  <xsl:include href="gemeinsam.xsl"/>

  <xsl:output method="xml" indent="yes" encoding="UTF-8"/>
  <xsl:strip-space elements="*"/>

  <xsl:param name="aktenplan_kennzeichen"/>
  <xsl:param name="behoerde_kennung"/>
  <xsl:param name="behoerde_name"/>
  <xsl:param name="dms_empfaenger"/>
  <xsl:param name="absender_stelle" select="'Gewerbeamt'"/>
  <xsl:param name="dms_erstellerkennung" select="'drehscheibe'"/>
  <xsl:param name="dms_dateiformat_code" select="'xml'"/>
  <!-- reserved parameters the hub supplies for container outputs -->
  <xsl:param name="ds:payload-file" select="''"/>
  <xsl:param name="ds:attachment-files" select="''"/>
  <xsl:param name="ds:attachment-types" select="''"/>
  <xsl:param name="ds:attachment-ids" select="''"/>

  <xsl:variable name="anzahl" select="count($meldungen)"/>

  <xsl:template match="/">
    <xsl:call-template name="pruefen"/>
    <xdomea:FVDaten.SGOAblegen.0605>
      <xdomea:Kopf>
        <xdomea:ProzessID>
          <xsl:call-template name="klein">
            <xsl:with-param name="wert" select="normalize-space($meldungen[1]/*[local-name() = 'uuid'])"/>
          </xsl:call-template>
        </xdomea:ProzessID>
        <xdomea:Nachrichtentyp listURI="urn:xoev-de:xdomea:codeliste:nachrichtentyp" listVersionID="2.0">
          <code>0605</code>
        </xdomea:Nachrichtentyp>
        <xdomea:Erstellungszeitpunkt><xsl:value-of select="$nachricht-zeitpunkt"/></xdomea:Erstellungszeitpunkt>
        <xdomea:Absender>
          <xsl:call-template name="behoerde"/>
          <xdomea:Organisationseinheit>
            <xdomea:Name><xsl:value-of select="$absender_stelle"/></xdomea:Name>
          </xdomea:Organisationseinheit>
        </xdomea:Absender>
        <xdomea:Empfaenger>
          <xsl:call-template name="behoerde"/>
          <xdomea:Organisationseinheit>
            <xdomea:Name><xsl:value-of select="$dms_empfaenger"/></xdomea:Name>
          </xdomea:Organisationseinheit>
        </xdomea:Empfaenger>
        <xdomea:SendendesSystem>
          <xdomea:Produktname>Drehscheibe</xdomea:Produktname>
          <xdomea:Version>gewerbeanmeldung 3.0.0</xdomea:Version>
        </xdomea:SendendesSystem>
        <xdomea:Empfangsbestaetigung>false</xdomea:Empfangsbestaetigung>
        <xdomea:Importbestaetigung>1</xdomea:Importbestaetigung>
        <xdomea:Erstellerkennung><xsl:value-of select="$dms_erstellerkennung"/></xdomea:Erstellerkennung>
        <xdomea:Stapel><xsl:value-of select="$anzahl &gt; 1"/></xdomea:Stapel>
        <xsl:if test="$anzahl &gt; 1">
          <xdomea:Stapellaenge><xsl:value-of select="$anzahl"/></xdomea:Stapellaenge>
        </xsl:if>
      </xdomea:Kopf>
      <xsl:apply-templates select="$meldungen" mode="ablegen"/>
    </xdomea:FVDaten.SGOAblegen.0605>
  </xsl:template>

  <!-- Behoerdenkennung and Institution of the Kommune. -->
  <xsl:template name="behoerde">
    <xdomea:Behoerdenkennung>
      <xdomea:Behoerdenschluessel>
        <code><xsl:value-of select="$behoerde_kennung"/></code>
      </xdomea:Behoerdenschluessel>
    </xdomea:Behoerdenkennung>
    <xdomea:Institution>
      <xdomea:Name><xsl:value-of select="$behoerde_name"/></xdomea:Name>
    </xdomea:Institution>
  </xsl:template>

  <!-- One Meldung → one SchriftgutobjektZumAblegen. -->
  <xsl:template match="*" mode="ablegen">
    <xsl:variable name="vorgang-id">
      <xsl:call-template name="klein">
        <xsl:with-param name="wert" select="normalize-space(*[local-name() = 'uuid'])"/>
      </xsl:call-template>
    </xsl:variable>
    <xsl:variable name="betrieb-id" select="normalize-space(*[local-name() = 'gewerbebetriebID'])"/>
    <xsl:variable name="betrieb-ist-uuid">
      <xsl:call-template name="ist-uuid">
        <xsl:with-param name="wert" select="$betrieb-id"/>
      </xsl:call-template>
    </xsl:variable>
    <xsl:variable name="betriebsname">
      <xsl:call-template name="betriebsname">
        <xsl:with-param name="meldung" select="."/>
      </xsl:call-template>
    </xsl:variable>
    <xdomea:SchriftgutobjektZumAblegen>
      <xsl:if test="$anzahl &gt; 1">
        <xdomea:NummerImStapel><xsl:value-of select="position()"/></xdomea:NummerImStapel>
      </xsl:if>
      <xdomea:FachverfahrenObjektID><xsl:value-of select="$vorgang-id"/></xdomea:FachverfahrenObjektID>
      <xdomea:Schriftgutobjekt>
        <xsl:choose>
          <xsl:when test="$betrieb-ist-uuid = 'true'">
            <xdomea:Akte>
              <xdomea:Identifikation>
                <xdomea:ID>
                  <xsl:call-template name="klein">
                    <xsl:with-param name="wert" select="$betrieb-id"/>
                  </xsl:call-template>
                </xdomea:ID>
              </xdomea:Identifikation>
              <xdomea:AllgemeineMetadaten>
                <xdomea:Betreff>Gewerbe <xsl:value-of select="$betriebsname"/></xdomea:Betreff>
                <xsl:call-template name="aktenplaneinheit"/>
              </xdomea:AllgemeineMetadaten>
              <xdomea:Typ>Gewerbeakte</xdomea:Typ>
              <xdomea:Akteninhalt>
                <xsl:call-template name="vorgang">
                  <xsl:with-param name="id" select="$vorgang-id"/>
                  <xsl:with-param name="betriebsname" select="$betriebsname"/>
                </xsl:call-template>
              </xdomea:Akteninhalt>
            </xdomea:Akte>
          </xsl:when>
          <xsl:otherwise>
            <xsl:call-template name="vorgang">
              <xsl:with-param name="id" select="$vorgang-id"/>
              <xsl:with-param name="betriebsname" select="$betriebsname"/>
            </xsl:call-template>
          </xsl:otherwise>
        </xsl:choose>
      </xdomea:Schriftgutobjekt>
      <xsl:if test="$betrieb-ist-uuid != 'true'">
        <xdomea:Ablageort><xsl:value-of select="$aktenplan_kennzeichen"/></xdomea:Ablageort>
      </xsl:if>
    </xdomea:SchriftgutobjektZumAblegen>
  </xsl:template>

  <!-- The Vorgang of one Meldung, with the original message as Dokument. -->
  <xsl:template name="vorgang">
    <xsl:param name="id"/>
    <xsl:param name="betriebsname"/>
    <xsl:variable name="art">
      <xsl:call-template name="meldungsart">
        <xsl:with-param name="meldung" select="."/>
      </xsl:call-template>
    </xsl:variable>
    <xsl:variable name="nachricht-ist-uuid">
      <xsl:call-template name="ist-uuid">
        <xsl:with-param name="wert" select="$nachricht-uuid"/>
      </xsl:call-template>
    </xsl:variable>
    <!-- The Dokument's ID (and its file name prefix): nachrichtenUUID, or
         the Vorgang's if the message has none. -->
    <xsl:variable name="dokument-id">
      <xsl:choose>
        <xsl:when test="$nachricht-ist-uuid = 'true'">
          <xsl:call-template name="klein">
            <xsl:with-param name="wert" select="$nachricht-uuid"/>
          </xsl:call-template>
        </xsl:when>
        <xsl:otherwise><xsl:value-of select="$id"/></xsl:otherwise>
      </xsl:choose>
    </xsl:variable>
    <xsl:variable name="meldung-nr" select="normalize-space(*[local-name() = 'gemeindeMeldungNr'])"/>
    <xsl:variable name="datum" select="normalize-space(*[local-name() = 'datumMeldung'])"/>
    <xdomea:Vorgang>
      <xdomea:Identifikation>
        <xdomea:ID><xsl:value-of select="$id"/></xdomea:ID>
      </xdomea:Identifikation>
      <xdomea:AllgemeineMetadaten>
        <xdomea:Betreff>
          <xsl:value-of select="$art"/>
          <xsl:if test="$meldung-nr != ''">
            <xsl:text> Nr. </xsl:text>
            <xsl:value-of select="$meldung-nr"/>
          </xsl:if>
          <xsl:text>: </xsl:text>
          <xsl:value-of select="$betriebsname"/>
        </xdomea:Betreff>
        <xsl:call-template name="aktenplaneinheit"/>
      </xdomea:AllgemeineMetadaten>
      <xdomea:Typ><xsl:value-of select="$art"/></xdomea:Typ>
      <xdomea:Dokument>
        <xdomea:Identifikation>
          <xdomea:ID><xsl:value-of select="$dokument-id"/></xdomea:ID>
        </xdomea:Identifikation>
        <xdomea:AllgemeineMetadaten>
          <xdomea:Betreff>XGewerbeanzeige-Nachricht <xsl:value-of select="local-name(/*)"/></xdomea:Betreff>
        </xdomea:AllgemeineMetadaten>
        <xsl:if test="$datum != ''">
          <xdomea:DatumDesSchreibens><xsl:value-of select="$datum"/></xdomea:DatumDesSchreibens>
        </xsl:if>
        <xdomea:Typ>Gewerbeanzeige</xdomea:Typ>
        <xdomea:Version>
          <xdomea:Nummer>1</xdomea:Nummer>
          <xdomea:Format>
            <xdomea:Name listURI="urn:xoev-de:xdomea:codeliste:dateiformat" listVersionID="2.0">
              <code><xsl:value-of select="$dms_dateiformat_code"/></code>
            </xdomea:Name>
            <xdomea:Version>XGewerbeanzeige <xsl:value-of select="normalize-space(/*/@version)"/></xdomea:Version>
            <xdomea:Primaerdokument>
              <xdomea:Dateiname><xsl:value-of select="$ds:payload-file"/></xdomea:Dateiname>
              <xsl:if test="$nachricht-zeitpunkt != ''">
                <xdomea:DatumUhrzeit><xsl:value-of select="$nachricht-zeitpunkt"/></xdomea:DatumUhrzeit>
              </xsl:if>
            </xdomea:Primaerdokument>
          </xdomea:Format>
        </xdomea:Version>
      </xdomea:Dokument>
      <!-- The application's attachments, filed with the first Meldung. -->
      <xsl:if test="generate-id(.) = generate-id($meldungen[1])">
        <xsl:call-template name="anlagen">
          <xsl:with-param name="dateien" select="$ds:attachment-files"/>
          <xsl:with-param name="typen" select="$ds:attachment-types"/>
          <xsl:with-param name="ids" select="$ds:attachment-ids"/>
          <xsl:with-param name="datum" select="$datum"/>
        </xsl:call-template>
      </xsl:if>
    </xdomea:Vorgang>
  </xsl:template>

  <!-- One Dokument per attachment: the lists hold one entry per line. -->
  <xsl:template name="anlagen">
    <xsl:param name="dateien"/>
    <xsl:param name="typen"/>
    <xsl:param name="ids"/>
    <xsl:param name="datum"/>
    <xsl:param name="nr" select="1"/>
    <xsl:if test="contains($dateien, '&#10;')">
      <xsl:variable name="datei" select="substring-before($dateien, '&#10;')"/>
      <xsl:variable name="typ" select="substring-before($typen, '&#10;')"/>
      <xsl:variable name="endung">
        <xsl:call-template name="endung">
          <!-- the sender's name, after the hub's "<uuid>_" -->
          <xsl:with-param name="name" select="substring-after($datei, '_')"/>
        </xsl:call-template>
      </xsl:variable>
      <xdomea:Dokument>
        <xdomea:Identifikation>
          <xdomea:ID><xsl:value-of select="substring-before($ids, '&#10;')"/></xdomea:ID>
        </xdomea:Identifikation>
        <xdomea:AllgemeineMetadaten>
          <xdomea:Betreff>Anlage <xsl:value-of select="$nr"/>: <xsl:value-of select="$datei"/></xdomea:Betreff>
        </xdomea:AllgemeineMetadaten>
        <xsl:if test="$datum != ''">
          <xdomea:DatumDesSchreibens><xsl:value-of select="$datum"/></xdomea:DatumDesSchreibens>
        </xsl:if>
        <xdomea:Typ>Anlage</xdomea:Typ>
        <xdomea:Version>
          <xdomea:Nummer>1</xdomea:Nummer>
          <xdomea:Format>
            <xdomea:Name listURI="urn:xoev-de:xdomea:codeliste:dateiformat" listVersionID="2.0">
              <code><xsl:value-of select="translate($endung, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"/></code>
            </xdomea:Name>
            <xdomea:Version><xsl:value-of select="$typ"/></xdomea:Version>
            <xdomea:Primaerdokument>
              <xdomea:Dateiname><xsl:value-of select="$datei"/></xdomea:Dateiname>
            </xdomea:Primaerdokument>
          </xdomea:Format>
        </xdomea:Version>
      </xdomea:Dokument>
      <xsl:call-template name="anlagen">
        <xsl:with-param name="dateien" select="substring-after($dateien, '&#10;')"/>
        <xsl:with-param name="typen" select="substring-after($typen, '&#10;')"/>
        <xsl:with-param name="ids" select="substring-after($ids, '&#10;')"/>
        <xsl:with-param name="datum" select="$datum"/>
        <xsl:with-param name="nr" select="$nr + 1"/>
      </xsl:call-template>
    </xsl:if>
  </xsl:template>

  <!-- The file name extension (after the last '.'), or 'bin' for a name
       without one. -->
  <xsl:template name="endung">
    <xsl:param name="name"/>
    <xsl:param name="erster" select="true()"/>
    <xsl:choose>
      <xsl:when test="contains($name, '.')">
        <xsl:call-template name="endung">
          <xsl:with-param name="name" select="substring-after($name, '.')"/>
          <xsl:with-param name="erster" select="false()"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:when test="$erster or $name = ''">bin</xsl:when>
      <xsl:otherwise><xsl:value-of select="$name"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template name="aktenplaneinheit">
    <xdomea:Aktenplaneinheit>
      <xdomea:Kennzeichen><xsl:value-of select="$aktenplan_kennzeichen"/></xdomea:Kennzeichen>
    </xdomea:Aktenplaneinheit>
  </xsl:template>

</xsl:stylesheet>
