<?xml version="1.0" encoding="UTF-8"?>
<!--
  XGewerbeanzeige 2.x Gewerbemeldung → Gewerbe Fachverfahren import
  (namespace urn:drehscheibe:import:gewerbe:1, schema gewerbe-import.xsd,
  described in rules/README.md).

  One <meldung> per satz of the message. Values are copied, trimmed, never
  invented: an element the message does not fill is left out. Code list
  values keep their XGewerbeanzeige codes (attribute `schluessel`); Ja/Nein
  codes become true/false; dates of birth (DDMMYYYY) become ISO dates.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns="urn:drehscheibe:import:gewerbe:1">

  <xsl:include href="gemeinsam.xsl"/>

  <xsl:output method="xml" indent="yes" encoding="UTF-8"/>
  <xsl:strip-space elements="*"/>

  <xsl:template match="/">
    <xsl:call-template name="pruefen"/>
    <gewerbeImport version="1">
      <quelle>
        <standard>XGewerbeanzeige</standard>
        <version><xsl:value-of select="normalize-space(/*/@version)"/></version>
        <nachrichtentyp><xsl:value-of select="local-name(/*)"/></nachrichtentyp>
        <nachrichtUUID>
          <xsl:call-template name="klein">
            <xsl:with-param name="wert" select="$nachricht-uuid"/>
          </xsl:call-template>
        </nachrichtUUID>
        <xsl:if test="$nachricht-zeitpunkt != ''">
          <erstellt><xsl:value-of select="$nachricht-zeitpunkt"/></erstellt>
        </xsl:if>
        <xsl:for-each select="$kopf/*[local-name() = 'autor']">
          <autor kennung="{normalize-space(*[local-name() = 'behoerdenkennung']/*[local-name() = 'kennung']/code)}">
            <xsl:value-of select="normalize-space(*[local-name() = 'behoerdenname'])"/>
          </autor>
        </xsl:for-each>
        <xsl:if test="/*/@test">
          <testnachricht><xsl:value-of select="normalize-space(/*/@test)"/></testnachricht>
        </xsl:if>
      </quelle>
      <xsl:apply-templates select="$meldungen" mode="meldung"/>
    </gewerbeImport>
  </xsl:template>

  <!-- ===== Meldung ===== -->

  <xsl:template match="*" mode="meldung">
    <xsl:variable name="gewerbe" select="*[local-name() = 'gewerbe']"/>
    <meldung art="{local-name()}" nr="{position()}">
      <uuid>
        <xsl:call-template name="klein">
          <xsl:with-param name="wert" select="normalize-space(*[local-name() = 'uuid'])"/>
        </xsl:call-template>
      </uuid>
      <ags>
        <xsl:call-template name="ags">
          <xsl:with-param name="meldung" select="."/>
        </xsl:call-template>
      </ags>
      <xsl:call-template name="feld">
        <xsl:with-param name="name" select="'gemeindeMeldungNr'"/>
        <xsl:with-param name="wert" select="*[local-name() = 'gemeindeMeldungNr']"/>
      </xsl:call-template>
      <korrektur><xsl:value-of select="normalize-space(*[local-name() = 'istKorrektur']/code) = '1'"/></korrektur>
      <xsl:call-template name="feld">
        <xsl:with-param name="name" select="'datumMeldung'"/>
        <xsl:with-param name="wert" select="*[local-name() = 'datumMeldung']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="name" select="'gueltigAb'"/>
        <xsl:with-param name="wert" select="*[local-name() = 'gueltigAb']"/>
      </xsl:call-template>
      <xsl:for-each select="*[local-name() = 'grundAnmeldungSchluessel' or local-name() = 'grundUmmeldungSchluessel' or local-name() = 'grundAbmeldungSchluessel']">
        <grund schluessel="{normalize-space(code)}"/>
      </xsl:for-each>
      <xsl:for-each select="*[local-name() = 'ursacheAbmeldungSchluessel']">
        <ursache schluessel="{normalize-space(code)}"/>
      </xsl:for-each>
      <xsl:apply-templates select="$gewerbe" mode="betrieb">
        <xsl:with-param name="meldung" select="."/>
      </xsl:apply-templates>
      <personen>
        <xsl:apply-templates select="$gewerbe/*[local-name() = 'beteiligtePerson']" mode="person"/>
      </personen>
      <xsl:apply-templates select="*[local-name() = 'taetigkeitenGesamt']" mode="taetigkeit"/>
    </meldung>
  </xsl:template>

  <!-- ===== Betrieb ===== -->

  <xsl:template match="*" mode="betrieb">
    <xsl:param name="meldung"/>
    <xsl:variable name="betrieb" select="*[local-name() = 'betrieb']"/>
    <betrieb>
      <xsl:if test="normalize-space($meldung/*[local-name() = 'gewerbebetriebID']) != ''">
        <xsl:attribute name="id">
          <xsl:value-of select="normalize-space($meldung/*[local-name() = 'gewerbebetriebID'])"/>
        </xsl:attribute>
      </xsl:if>
      <name>
        <xsl:call-template name="betriebsname">
          <xsl:with-param name="meldung" select="$meldung"/>
        </xsl:call-template>
      </name>
      <xsl:for-each select="$betrieb/*[local-name() = 'rechtsformSchluessel']">
        <rechtsform schluessel="{normalize-space(code)}"/>
      </xsl:for-each>
      <xsl:if test="normalize-space($betrieb/*[local-name() = 'eintragungNr']) != ''">
        <register nummer="{normalize-space($betrieb/*[local-name() = 'eintragungNr'])}">
          <xsl:if test="normalize-space($betrieb/*[local-name() = 'eintragungArt']/code) != ''">
            <xsl:attribute name="art"><xsl:value-of select="normalize-space($betrieb/*[local-name() = 'eintragungArt']/code)"/></xsl:attribute>
          </xsl:if>
          <xsl:if test="normalize-space($betrieb/*[local-name() = 'gerichtSchluessel']/code) != ''">
            <xsl:attribute name="gericht"><xsl:value-of select="normalize-space($betrieb/*[local-name() = 'gerichtSchluessel']/code)"/></xsl:attribute>
          </xsl:if>
          <xsl:value-of select="normalize-space($betrieb/*[local-name() = 'eintragungOrt'])"/>
        </register>
      </xsl:if>
      <xsl:apply-templates select="*[local-name() = 'anschrift']" mode="anschrift"/>
      <beschaeftigte vollzeit="{number(concat('0', normalize-space(*[local-name() = 'anzahlVollzeitBeschaeftigte'])))}"
                     teilzeit="{number(concat('0', normalize-space(*[local-name() = 'anzahlTeilzeitBeschaeftigte'])))}"/>
      <xsl:for-each select="*[local-name() = 'betriebArt']">
        <betriebsart industrie="{normalize-space(*[local-name() = 'industrie']/code) = '1'}"
                     handwerk="{normalize-space(*[local-name() = 'handwerk']/code) = '1'}"
                     handel="{normalize-space(*[local-name() = 'handel']/code) = '1'}"
                     sonstiges="{normalize-space(*[local-name() = 'sonstiges']/code) = '1'}"/>
      </xsl:for-each>
      <xsl:for-each select="*[local-name() = 'niederlassungArt']">
        <niederlassung schluessel="{normalize-space(code)}"/>
      </xsl:for-each>
      <reisegewerbe><xsl:value-of select="normalize-space(*[local-name() = 'istReisegewerbe']/code) = '1'"/></reisegewerbe>
      <nebenerwerb><xsl:value-of select="normalize-space(*[local-name() = 'istNebenerwerb']/code) = '1'"/></nebenerwerb>
      <xsl:apply-templates select="*[local-name() = 'erreichbarkeit']" mode="kontakt"/>
    </betrieb>
  </xsl:template>

  <!-- ===== Personen ===== -->

  <xsl:template match="*" mode="person">
    <person funktion="{normalize-space(*[local-name() = 'personFunktion']/code)}">
      <xsl:if test="normalize-space(*[local-name() = 'geschlecht']/code) != ''">
        <xsl:attribute name="geschlecht"><xsl:value-of select="normalize-space(*[local-name() = 'geschlecht']/code)"/></xsl:attribute>
      </xsl:if>
      <xsl:call-template name="feld">
        <xsl:with-param name="name" select="'doktorgrad'"/>
        <xsl:with-param name="wert" select="*[local-name() = 'doktorgrad']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="name" select="'familienname'"/>
        <xsl:with-param name="wert" select="*[local-name() = 'familienname']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="name" select="'vorname'"/>
        <xsl:with-param name="wert" select="*[local-name() = 'vorname']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="name" select="'geburtsname'"/>
        <xsl:with-param name="wert" select="*[local-name() = 'geburtsname']"/>
      </xsl:call-template>
      <xsl:if test="normalize-space(*[local-name() = 'geburtsdatum']) != ''">
        <geburtsdatum>
          <xsl:call-template name="iso-datum">
            <xsl:with-param name="wert" select="normalize-space(*[local-name() = 'geburtsdatum'])"/>
          </xsl:call-template>
        </geburtsdatum>
      </xsl:if>
      <xsl:call-template name="feld">
        <xsl:with-param name="name" select="'geburtsort'"/>
        <xsl:with-param name="wert" select="*[local-name() = 'geburtsort']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="name" select="'geburtsland'"/>
        <xsl:with-param name="wert" select="*[local-name() = 'geburtsland']"/>
      </xsl:call-template>
      <xsl:for-each select="*[local-name() = 'staatangehoerigkeiten']/*[local-name() = 'staatsangehoerigkeitSchluessel']">
        <staatsangehoerigkeit schluessel="{normalize-space(code)}"/>
      </xsl:for-each>
      <xsl:apply-templates select="*[local-name() = 'anschrift']" mode="anschrift"/>
      <xsl:apply-templates select="*[local-name() = 'erreichbarkeit']" mode="kontakt"/>
    </person>
  </xsl:template>

  <!-- ===== Tätigkeit ===== -->

  <xsl:template match="*" mode="taetigkeit">
    <xsl:variable name="weitere" select="*[local-name() = 'weitereTaetigkeiten']"/>
    <taetigkeit>
      <xsl:for-each select="*[local-name() = 'schwerpunkt']">
        <schwerpunkt>
          <xsl:if test="normalize-space(*[local-name() = 'taetigkeitSchluessel']) != ''">
            <xsl:attribute name="schluessel"><xsl:value-of select="normalize-space(*[local-name() = 'taetigkeitSchluessel'])"/></xsl:attribute>
          </xsl:if>
          <xsl:value-of select="normalize-space(*[local-name() = 'taetigkeitSchwerpunkt'])"/>
        </schwerpunkt>
      </xsl:for-each>
      <xsl:choose>
        <xsl:when test="$weitere/*[local-name() = 'taetigkeit']">
          <xsl:for-each select="$weitere/*[local-name() = 'taetigkeit']">
            <weitere>
              <xsl:if test="normalize-space(*[local-name() = 'taetigkeitSchluessel']) != ''">
                <xsl:attribute name="schluessel"><xsl:value-of select="normalize-space(*[local-name() = 'taetigkeitSchluessel'])"/></xsl:attribute>
              </xsl:if>
              <xsl:value-of select="normalize-space(*[local-name() = 'taetigkeitEinzeln'])"/>
            </weitere>
          </xsl:for-each>
        </xsl:when>
        <xsl:otherwise>
          <!-- Only the summary: its parts are separated by '|'. -->
          <xsl:call-template name="teile">
            <xsl:with-param name="text" select="normalize-space($weitere/*[local-name() = 'taetigkeitenZusammengefasst'])"/>
          </xsl:call-template>
        </xsl:otherwise>
      </xsl:choose>
    </taetigkeit>
  </xsl:template>

  <!-- One <weitere> per '|'-separated part of $text (recursive). -->
  <xsl:template name="teile">
    <xsl:param name="text"/>
    <xsl:variable name="teil">
      <xsl:choose>
        <xsl:when test="contains($text, '|')"><xsl:value-of select="normalize-space(substring-before($text, '|'))"/></xsl:when>
        <xsl:otherwise><xsl:value-of select="normalize-space($text)"/></xsl:otherwise>
      </xsl:choose>
    </xsl:variable>
    <xsl:if test="$teil != ''">
      <weitere><xsl:value-of select="$teil"/></weitere>
    </xsl:if>
    <xsl:if test="contains($text, '|')">
      <xsl:call-template name="teile">
        <xsl:with-param name="text" select="substring-after($text, '|')"/>
      </xsl:call-template>
    </xsl:if>
  </xsl:template>

  <!-- ===== Anschrift, Kontakt ===== -->

  <xsl:template match="*" mode="anschrift">
    <anschrift>
      <xsl:call-template name="feld">
        <xsl:with-param name="name" select="'strasse'"/>
        <xsl:with-param name="wert" select="*[local-name() = 'strasse']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="name" select="'hausnummer'"/>
        <xsl:with-param name="wert" select="(*[local-name() = 'hausNr'] | *[local-name() = 'hausNrVon'])[1]"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="name" select="'plz'"/>
        <xsl:with-param name="wert" select="*[local-name() = 'plz']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="name" select="'ort'"/>
        <xsl:with-param name="wert" select="*[local-name() = 'ort']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="name" select="'staat'"/>
        <xsl:with-param name="wert" select="*[local-name() = 'nationSchluessel']"/>
      </xsl:call-template>
    </anschrift>
  </xsl:template>

  <!-- Erreichbarkeit (XÖV code list erreichbarkeit): 01 E-Mail,
       02 Telefon, 03 Mobiltelefon, 04 Fax, 09 Webseite; others keep
       only their code. -->
  <xsl:template match="*" mode="kontakt">
    <xsl:variable name="kanal" select="normalize-space(*[local-name() = 'kanal']/code)"/>
    <kontakt kanal="{$kanal}">
      <xsl:attribute name="art">
        <xsl:choose>
          <xsl:when test="$kanal = '01'">email</xsl:when>
          <xsl:when test="$kanal = '02'">telefon</xsl:when>
          <xsl:when test="$kanal = '03'">mobil</xsl:when>
          <xsl:when test="$kanal = '04'">fax</xsl:when>
          <xsl:when test="$kanal = '09'">web</xsl:when>
          <xsl:otherwise>sonstige</xsl:otherwise>
        </xsl:choose>
      </xsl:attribute>
      <xsl:value-of select="normalize-space(*[local-name() = 'kennung'])"/>
    </kontakt>
  </xsl:template>

  <!-- ===== Helpers ===== -->

  <!-- <$name>$wert</$name> if the trimmed value is not empty. -->
  <xsl:template name="feld">
    <xsl:param name="name"/>
    <xsl:param name="wert"/>
    <xsl:if test="normalize-space($wert) != ''">
      <xsl:element name="{$name}" namespace="urn:drehscheibe:import:gewerbe:1">
        <xsl:value-of select="normalize-space($wert)"/>
      </xsl:element>
    </xsl:if>
  </xsl:template>

  <!-- DDMMYYYY (XGewerbeanzeige) → YYYY-MM-DD; anything else unchanged. -->
  <xsl:template name="iso-datum">
    <xsl:param name="wert"/>
    <xsl:choose>
      <xsl:when test="string-length($wert) = 8 and translate($wert, '0123456789', '') = ''">
        <xsl:value-of select="concat(substring($wert, 5, 4), '-', substring($wert, 3, 2), '-', substring($wert, 1, 2))"/>
      </xsl:when>
      <xsl:otherwise>
        <xsl:value-of select="$wert"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

</xsl:stylesheet>
