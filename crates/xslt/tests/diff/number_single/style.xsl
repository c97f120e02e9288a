<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><r><xsl:apply-templates select="//item"/></r></xsl:template>
  <xsl:template match="item">
    <i><xsl:number/>/<xsl:number count="order"/>/<xsl:number value="position() * 10"/></i>
  </xsl:template>
</xsl:stylesheet>
