<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- XSLT 3.0 / F&O 3.0 picture features: exponents, irregular grouping, percent, per-mille, negative sub-picture. -->
  <xsl:decimal-format name="ch" grouping-separator="'" decimal-separator="."/>
  <xsl:template match="/">
    <n>
      <a><xsl:value-of select="format-number(12345.678, '0.00e0')"/></a>
      <b><xsl:value-of select="format-number(0.000123, '0.0e00')"/></b>
      <c><xsl:value-of select="format-number(-12345.678, '#0.###e0')"/></c>
      <d><xsl:value-of select="format-number(12345678, '#,##,##0')"/></d>
      <e><xsl:value-of select="format-number(0.257, '0.0%')"/></e>
      <f><xsl:value-of select="format-number(0.0257, '0.0&#x2030;')"/></f>
      <g><xsl:value-of select="format-number(-42.5, '#,##0.00;(#,##0.00)')"/></g>
      <h><xsl:value-of select="format-number(1234567.5, &quot;#'##0.00&quot;, 'ch')"/></h>
      <i><xsl:value-of select="format-number(7, '000')"/></i>
      <j><xsl:value-of select="format-number(1 div 0e0, '0.00')"/></j>
      <k><xsl:value-of select="format-number(xs:decimal('0.125'), '0.00')"/></k>
      <l><xsl:value-of select="format-number(xs:decimal('0.135'), '0.00')"/></l>
      <m><xsl:value-of select="format-number(123.456, '###')"/></m>
      <o><xsl:value-of select="format-number(-0.0001, '0.00')"/></o>
    </n>
  </xsl:template>
</xsl:stylesheet>
