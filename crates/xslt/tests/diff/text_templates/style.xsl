<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="text()"><xsl:value-of select="translate(., 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')"/></xsl:template>
  <xsl:template match="customer"><c><xsl:apply-templates/></c></xsl:template>
  <xsl:template match="/"><r><xsl:apply-templates select="//customer"/></r></xsl:template>
</xsl:stylesheet>
