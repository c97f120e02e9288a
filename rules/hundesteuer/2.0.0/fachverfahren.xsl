<?xml version="1.0" encoding="UTF-8"?>
<!--
  Hundesteuer-Anmeldung (JSON form, seen as its fn:json-to-xml form) →
  CSV import for the Steueramt's Fachverfahren.

  Format: UTF-8, lines end with LF, first line the header, then one line
  per Hund (in form order). Columns:
    eingereicht;halter_name;halter_anschrift;halter_ags;hund_nr;anzahl_hunde;hund_name;rasse;geboren;chip;zahlweise
  `hund_nr` counts the Hunde of this application from 1 (the Steueramt
  needs it for the Zweithund rate), `anzahl_hunde` is their number. Values
  are whitespace-normalised; a value containing the separator or a double
  quote is written in double quotes, inner quotes doubled (RFC 4180).
  JSON strings, numbers and booleans are all taken by their text.

  XSLT 1.0 on purpose: the same result with the hub's processor and with
  xsltproc (given the json-to-xml form of the input).
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:fn="http://www.w3.org/2005/xpath-functions"
    exclude-result-prefixes="fn">

  <xsl:output method="text" encoding="UTF-8"/>

  <xsl:param name="trennzeichen" select="';'"/>

  <xsl:variable name="antrag" select="/fn:map"/>
  <xsl:variable name="halter" select="$antrag/fn:map[@key = 'halter']"/>
  <xsl:variable name="hunde" select="$antrag/fn:array[@key = 'hunde']/fn:map"/>
  <xsl:variable name="zeilenende" select="'&#10;'"/>

  <xsl:template match="/">
    <xsl:call-template name="pruefen"/>
    <xsl:value-of select="concat('eingereicht', $trennzeichen, 'halter_name', $trennzeichen, 'halter_anschrift', $trennzeichen, 'halter_ags', $trennzeichen,
                                 'hund_nr', $trennzeichen, 'anzahl_hunde', $trennzeichen, 'hund_name', $trennzeichen,
                                 'rasse', $trennzeichen, 'geboren', $trennzeichen, 'chip', $trennzeichen, 'zahlweise')"/>
    <xsl:value-of select="$zeilenende"/>
    <xsl:for-each select="$hunde">
      <xsl:call-template name="feld">
        <xsl:with-param name="wert" select="$antrag/*[@key = 'eingereicht']"/>
        <xsl:with-param name="erstes" select="true()"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="wert" select="$halter/*[@key = 'name']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="wert" select="$halter/*[@key = 'anschrift']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="wert" select="$halter/*[@key = 'ags']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="wert" select="position()"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="wert" select="last()"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="wert" select="*[@key = 'name']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="wert" select="*[@key = 'rasse']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="wert" select="*[@key = 'geboren']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="wert" select="*[@key = 'chip']"/>
      </xsl:call-template>
      <xsl:call-template name="feld">
        <xsl:with-param name="wert" select="$antrag/*[@key = 'zahlweise']"/>
      </xsl:call-template>
      <xsl:value-of select="$zeilenende"/>
    </xsl:for-each>
  </xsl:template>

  <!--
    Refusals: the hub rejects the message with the text as reason. (An
    application without halter.ags never gets here: the rule's extract
    finds no Kommune and the message is not routed.)
  -->
  <xsl:template name="pruefen">
    <xsl:if test="normalize-space($halter/*[@key = 'name']) = ''">
      <xsl:message terminate="yes">Hundesteuer-Anmeldung abgelehnt: Pflichtfeld halter.name fehlt.</xsl:message>
    </xsl:if>
    <xsl:if test="not($hunde)">
      <xsl:message terminate="yes">Hundesteuer-Anmeldung abgelehnt: kein Hund angegeben (hunde ist leer oder fehlt).</xsl:message>
    </xsl:if>
    <xsl:for-each select="$hunde">
      <xsl:if test="normalize-space(*[@key = 'name']) = ''">
        <xsl:message terminate="yes">Hundesteuer-Anmeldung abgelehnt: Pflichtfeld hunde[<xsl:value-of select="position()"/>].name fehlt.</xsl:message>
      </xsl:if>
    </xsl:for-each>
  </xsl:template>

  <!-- One CSV field, preceded by the separator unless $erstes. -->
  <xsl:template name="feld">
    <xsl:param name="wert"/>
    <xsl:param name="erstes" select="false()"/>
    <xsl:variable name="text" select="normalize-space($wert)"/>
    <xsl:if test="not($erstes)">
      <xsl:value-of select="$trennzeichen"/>
    </xsl:if>
    <xsl:choose>
      <xsl:when test="contains($text, $trennzeichen) or contains($text, '&quot;')">
        <xsl:text>"</xsl:text>
        <xsl:call-template name="anfuehrungszeichen-verdoppeln">
          <xsl:with-param name="text" select="$text"/>
        </xsl:call-template>
        <xsl:text>"</xsl:text>
      </xsl:when>
      <xsl:otherwise>
        <xsl:value-of select="$text"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- $text with every " doubled (recursive). -->
  <xsl:template name="anfuehrungszeichen-verdoppeln">
    <xsl:param name="text"/>
    <xsl:choose>
      <xsl:when test="contains($text, '&quot;')">
        <xsl:value-of select="substring-before($text, '&quot;')"/>
        <xsl:text>""</xsl:text>
        <xsl:call-template name="anfuehrungszeichen-verdoppeln">
          <xsl:with-param name="text" select="substring-after($text, '&quot;')"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:otherwise>
        <xsl:value-of select="$text"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

</xsl:stylesheet>
