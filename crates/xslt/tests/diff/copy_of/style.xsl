<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <xsl:copy-of select="//order[2]"/>
      <attrs><xsl:copy-of select="//order[1]/@*"/></attrs>
      <texts><xsl:copy-of select="//customer/text()"/></texts>
      <str><xsl:copy-of select="concat('a', 'b')"/></str>
      <num><xsl:copy-of select="count(//item)"/></num>
    </r>
  </xsl:template>
</xsl:stylesheet>
