<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <xsl:message>processing <xsl:value-of select="count(//order)"/> orders</xsl:message>
    <r><xsl:message terminate="no">still going</xsl:message><done/></r>
  </xsl:template>
</xsl:stylesheet>
