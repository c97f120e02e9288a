<?xml version="1.0" encoding="UTF-8"?>
<!--
  XGewerbeanzeige 2.x Gewerbemeldung → xdomea 3.1.0 FVDaten.SGOAblegen.0605:
  the hub, in the Fachverfahren's role, asks the DMS to file the Meldung
  into the E-Akte. Valid against the xdomea 3.1.0 schema
  (xmllint -noout -schema xdomea.xsd).

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
    xmlns:xdomea="urn:xoev-de:xdomea:schema:3.1.0">

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
          <xdomea:Version>gewerbeanmeldung 2.1.0</xdomea:Version>
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
              <xdomea:Dateiname><xsl:value-of select="$dokument-id"/>_xgewerbeanzeige.xml</xdomea:Dateiname>
              <xsl:if test="$nachricht-zeitpunkt != ''">
                <xdomea:DatumUhrzeit><xsl:value-of select="$nachricht-zeitpunkt"/></xdomea:DatumUhrzeit>
              </xsl:if>
            </xdomea:Primaerdokument>
          </xdomea:Format>
        </xdomea:Version>
      </xdomea:Dokument>
    </xdomea:Vorgang>
  </xsl:template>

  <xsl:template name="aktenplaneinheit">
    <xdomea:Aktenplaneinheit>
      <xdomea:Kennzeichen><xsl:value-of select="$aktenplan_kennzeichen"/></xdomea:Kennzeichen>
    </xdomea:Aktenplaneinheit>
  </xsl:template>

</xsl:stylesheet>
