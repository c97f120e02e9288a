<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text" encoding="UTF-8"/>
  <xsl:strip-space elements="*"/>
  <xsl:template match="order">Order <xsl:value-of select="@id"/>:<xsl:apply-templates select="item"/><xsl:text>&#10;</xsl:text></xsl:template>
  <xsl:template match="item"><xsl:text> </xsl:text><xsl:value-of select="@qty"/>x<xsl:value-of select="."/></xsl:template>
  <xsl:template match="customer"/>
</xsl:stylesheet>
