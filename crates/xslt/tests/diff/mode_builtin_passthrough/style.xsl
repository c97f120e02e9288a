<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><r><xsl:apply-templates mode="m"/></r></xsl:template>
  <xsl:template match="item" mode="m"><i><xsl:value-of select="@sku"/></i></xsl:template>
  <xsl:template match="text()" mode="m"/>
</xsl:stylesheet>
