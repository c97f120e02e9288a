<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:variable name="label" select="'base'"/>
  <xsl:template match="/"><r label="{$label}"><xsl:apply-templates select="//customer|//order"/></r></xsl:template>
  <xsl:template match="customer" priority="10"><base-customer/></xsl:template>
  <xsl:template match="order"><base-order id="{@id}"/></xsl:template>
</xsl:stylesheet>
