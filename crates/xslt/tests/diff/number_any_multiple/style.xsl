<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><r><xsl:apply-templates select="//h"/></r></xsl:template>
  <xsl:template match="h">
    <h any="{0}" text="{.}"><xsl:number level="any"/>|<xsl:number level="any" from="chapter"/>|<xsl:number level="multiple" count="chapter|section" format="1.1"/>|<xsl:number level="multiple" count="chapter|section|h" format="1.a.i"/></h>
  </xsl:template>
</xsl:stylesheet>
