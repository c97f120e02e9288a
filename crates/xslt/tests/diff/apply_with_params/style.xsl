<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/orders">
    <r><xsl:apply-templates select="order"><xsl:with-param name="factor" select="2"/><xsl:with-param name="label">L</xsl:with-param></xsl:apply-templates></r>
  </xsl:template>
  <xsl:template match="order">
    <xsl:param name="factor" select="1"/>
    <xsl:param name="label" select="'none'"/>
    <xsl:param name="unused" select="'default'"/>
    <o id="{@id}" f="{$factor}" l="{$label}" u="{$unused}" n="{count(item) * $factor}"/>
  </xsl:template>
</xsl:stylesheet>
