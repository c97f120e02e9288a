<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text"/>
  <xsl:template match="/">
    <xsl:for-each select="//order">
      <xsl:value-of select="@id"/><xsl:text>;</xsl:text><xsl:value-of select="@customer"/><xsl:text>;</xsl:text><xsl:value-of select="count(item)"/><xsl:text>&#10;</xsl:text>
    </xsl:for-each>
    <xsl:text>a &amp; b &lt; c</xsl:text>
  </xsl:template>
</xsl:stylesheet>
