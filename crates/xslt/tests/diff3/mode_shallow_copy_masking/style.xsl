<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- Identity transform via xsl:mode on-no-match, masking personal data (data protection) on the way through. -->
  <xsl:mode on-no-match="shallow-copy"/>
  <xsl:param name="maskieren" as="xs:boolean" select="true()"/>
  <xsl:template match="antrag/name[$maskieren]">
    <xsl:copy><xsl:value-of select="substring(., 1, 1) || '***'"/></xsl:copy>
  </xsl:template>
  <xsl:template match="geburt">
    <geburtsjahr><xsl:value-of select="year-from-date(xs:date(.))"/></geburtsjahr>
  </xsl:template>
  <xsl:template match="@plz"><xsl:attribute name="plz" select="substring(., 1, 2) || 'xxx'"/></xsl:template>
  <xsl:template match="antrag[@status = 'abgelehnt']"/>
  <xsl:template match="antraege/@stichtag"/>
</xsl:stylesheet>
