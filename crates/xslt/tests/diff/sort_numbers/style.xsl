<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <asc><xsl:for-each select="//v"><xsl:sort select="." data-type="number"/><xsl:value-of select="."/>,</xsl:for-each></asc>
      <desc><xsl:for-each select="//v"><xsl:sort select="." data-type="number" order="descending"/><xsl:value-of select="."/>,</xsl:for-each></desc>
      <text><xsl:for-each select="//v"><xsl:sort select="."/><xsl:value-of select="."/>,</xsl:for-each></text>
      <apply><xsl:apply-templates select="//v"><xsl:sort select="@k"/><xsl:sort select="." data-type="number"/></xsl:apply-templates></apply>
    </r>
  </xsl:template>
  <xsl:template match="v"><v k="{@k}"><xsl:value-of select="."/></v></xsl:template>
</xsl:stylesheet>
