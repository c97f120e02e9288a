<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- Fixed-width record file for a legacy procedure: padding, truncation, zero-filled amounts in cents. -->
  <xsl:output method="text"/>
  <xsl:function name="f:links" as="xs:string">
    <xsl:param name="s" as="xs:string?"/>
    <xsl:param name="n" as="xs:integer"/>
    <xsl:sequence select="substring($s || string-join((1 to $n) ! ' '), 1, $n)"/>
  </xsl:function>
  <xsl:function name="f:rechts" as="xs:string">
    <xsl:param name="s" as="xs:string"/>
    <xsl:param name="n" as="xs:integer"/>
    <xsl:sequence select="substring(string-join((1 to $n) ! ' ') || $s, string-length($s) + 1)"/>
  </xsl:function>
  <xsl:template match="/antraege">
    <xsl:text>00</xsl:text><xsl:value-of select="format-date(xs:date(@stichtag), '[Y0001][M01][D01]')"/><xsl:value-of select="format-integer(count(antrag), '000000')"/><xsl:text>&#10;</xsl:text>
    <xsl:for-each select="antrag">
      <xsl:value-of select="'10', f:links(@id, 6), f:links(upper-case(name), 8), f:links(vorname, 6), format-number(xs:decimal(@betrag) * 100, '000000000'), f:rechts(@plz, 6), substring(@art, 1, 1)" separator=""/>
      <xsl:text>|&#10;</xsl:text>
    </xsl:for-each>
    <xsl:text>99</xsl:text><xsl:value-of select="format-number(sum(antrag/xs:decimal(@betrag)) * 100, '000000000000')"/><xsl:text>&#10;</xsl:text>
  </xsl:template>
</xsl:stylesheet>
