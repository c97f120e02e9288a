<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><r><xsl:apply-templates select="//li"/></r></xsl:template>
  <xsl:template match="li"><mid><xsl:value-of select="."/></mid></xsl:template>
  <xsl:template match="li[1]"><first><xsl:value-of select="."/></first></xsl:template>
  <xsl:template match="li[last()]"><last><xsl:value-of select="."/></last></xsl:template>
  <xsl:template match="ul[@class='even']/li[position() mod 2 = 0]" priority="1"><even><xsl:value-of select="."/></even></xsl:template>
</xsl:stylesheet>
