<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><r><xsl:apply-templates select="//item"/></r></xsl:template>
  <xsl:template match="item" priority="1"><low><xsl:value-of select="@sku"/></low></xsl:template>
  <xsl:template match="item[@qty &gt; 2]" priority="2"><high><xsl:value-of select="@sku"/></high></xsl:template>
  <xsl:template match="order[@id='o3']/item" priority="3"><top><xsl:value-of select="@sku"/></top></xsl:template>
  <xsl:template match="item[@sku='A-1']" priority="-4"><never/></xsl:template>
</xsl:stylesheet>
