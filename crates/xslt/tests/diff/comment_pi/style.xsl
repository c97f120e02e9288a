<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <xsl:comment>generated for <xsl:value-of select="count(//order)"/> orders</xsl:comment>
      <xsl:processing-instruction name="app">mode="<xsl:value-of select="//order[1]/@id"/>"</xsl:processing-instruction>
      <xsl:processing-instruction name="{concat('p', 'i')}">x</xsl:processing-instruction>
    </r>
  </xsl:template>
</xsl:stylesheet>
