<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- xsl:key with a sequence-valued use, key() with a sequence of values, and a typed key. -->
  <xsl:key name="nach-stadt" match="antrag" use="substring(@ags, 1, 5), @status"/>
  <xsl:key name="nach-betrag" match="antrag" use="xs:decimal(@betrag)"/>
  <xsl:key name="nach-monat" match="antrag" use="month-from-date(xs:date(@eingang))"/>
  <xsl:template match="/antraege">
    <k>
      <a><xsl:value-of select="key('nach-stadt', '09162')/@id"/></a>
      <b><xsl:value-of select="key('nach-stadt', ('offen', '05315'))/@id"/></b>
      <c><xsl:value-of select="key('nach-betrag', 1800)/@id, key('nach-betrag', xs:decimal('934.0'))/@id"/></c>
      <d><xsl:value-of select="for $m in 1 to 12 return count(key('nach-monat', $m))"/></d>
      <e><xsl:value-of select="count(key('nach-stadt', 'offen', /))"/></e>
    </k>
  </xsl:template>
</xsl:stylesheet>
