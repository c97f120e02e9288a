<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><r><xsl:apply-templates select="//*"/></r></xsl:template>
  <xsl:template match="a|b"><ab name="{name()}"/></xsl:template>
  <xsl:template match="/root/c"><root-c/></xsl:template>
  <xsl:template match="x//c"><deep-c/></xsl:template>
  <xsl:template match="//d"><d/></xsl:template>
  <xsl:template match="*"/>
</xsl:stylesheet>
