<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- German number formatting via a named decimal-format. -->
  <xsl:decimal-format name="de" decimal-separator="," grouping-separator="."/>
  <xsl:output method="text"/>
  <xsl:template match="/rechnung">
    <xsl:for-each select="position">
      <xsl:value-of select="@nr, text, format-number(xs:decimal(menge) * xs:decimal(einzelpreis), '#.##0,00', 'de') || ' EUR'" separator="|"/>
      <xsl:text>&#10;</xsl:text>
    </xsl:for-each>
    <xsl:value-of select="format-number(1234567.891, '#.##0,###', 'de'), format-number(-0.5, '0,00', 'de'), format-number(0, '#.##0,00', 'de')" separator="&#10;"/>
    <xsl:text>&#10;</xsl:text>
  </xsl:template>
</xsl:stylesheet>
