<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:variable name="v" select="'global'"/>
  <xsl:template match="/">
    <r>
      <a><xsl:value-of select="$v"/></a>
      <xsl:for-each select="//order">
        <xsl:variable name="v" select="@id"/>
        <b><xsl:value-of select="$v"/></b>
      </xsl:for-each>
      <c><xsl:value-of select="$v"/></c>
      <xsl:call-template name="t"/>
    </r>
  </xsl:template>
  <xsl:template name="t"><d><xsl:value-of select="$v"/></d></xsl:template>
</xsl:stylesheet>
