<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:array="http://www.w3.org/2005/xpath-functions/array" exclude-result-prefixes="#all">
  <!-- xsl:decimal-format exponent-separator (XSLT 3.0) for scientific notation in technical values. -->
  <xsl:decimal-format name="wiss" exponent-separator="E" decimal-separator="," grouping-separator="."/>
  <xsl:template match="/">
    <r>
      <a><xsl:value-of select="format-number(12345.678, '#0,###E0', 'wiss')"/></a>
      <b><xsl:value-of select="format-number(0.00042, '0,0E00', 'wiss')"/></b>
    </r>
  </xsl:template>
</xsl:stylesheet>
