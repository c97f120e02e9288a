<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><r><xsl:apply-templates select="//item/@*"/></r></xsl:template>
  <xsl:template match="@*"><attr name="{name()}" value="{.}"/></xsl:template>
  <xsl:template match="@price"><price><xsl:value-of select=". * 100"/></price></xsl:template>
  <xsl:template match="item[@qty='1']/@sku"><single sku="{.}"/></xsl:template>
</xsl:stylesheet>
