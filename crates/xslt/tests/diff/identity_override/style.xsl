<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="@*|node()">
    <xsl:copy><xsl:apply-templates select="@*|node()"/></xsl:copy>
  </xsl:template>
  <xsl:template match="item/@price"><xsl:attribute name="cost"><xsl:value-of select=". * 2"/></xsl:attribute></xsl:template>
  <xsl:template match="customer"/>
  <xsl:template match="order[@customer='c1']"><special-order><xsl:apply-templates select="@*|node()"/></special-order></xsl:template>
</xsl:stylesheet>
