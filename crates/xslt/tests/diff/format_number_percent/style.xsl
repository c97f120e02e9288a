<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:decimal-format name="x" percent="%" minus-sign="~" NaN="n/a" zero-digit="0"/>
  <xsl:template match="/">
    <r>
      <pct><xsl:value-of select="format-number(0.256, '0.0%')"/></pct>
      <mil><xsl:value-of select="format-number(0.0123, '0&#x2030;')"/></mil>
      <negpic><xsl:value-of select="format-number(-12.3, '0.00;(0.00)')"/></negpic>
      <pos><xsl:value-of select="format-number(12.3, '0.00;(0.00)')"/></pos>
      <prefix><xsl:value-of select="format-number(42, 'EUR #0.00 net')"/></prefix>
      <minus><xsl:value-of select="format-number(-5, '0', 'x')"/></minus>
      <nan><xsl:value-of select="format-number(number('x'), '0', 'x')"/></nan>
    </r>
  </xsl:template>
</xsl:stylesheet>
