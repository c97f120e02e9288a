<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template name="split">
    <xsl:param name="s"/>
    <xsl:choose>
      <xsl:when test="contains($s, ',')">
        <t><xsl:value-of select="normalize-space(substring-before($s, ','))"/></t>
        <xsl:call-template name="split"><xsl:with-param name="s" select="substring-after($s, ',')"/></xsl:call-template>
      </xsl:when>
      <xsl:when test="normalize-space($s) != ''"><t><xsl:value-of select="normalize-space($s)"/></t></xsl:when>
    </xsl:choose>
  </xsl:template>
  <xsl:template match="/"><r><xsl:call-template name="split"><xsl:with-param name="s" select="/d"/></xsl:call-template></r></xsl:template>
</xsl:stylesheet>
