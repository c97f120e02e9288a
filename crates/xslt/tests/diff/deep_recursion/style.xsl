<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template name="count">
    <xsl:param name="n"/>
    <xsl:if test="$n &gt; 0"><xsl:call-template name="count"><xsl:with-param name="n" select="$n - 1"/></xsl:call-template></xsl:if>
    <xsl:if test="$n = 0"><bottom/></xsl:if>
  </xsl:template>
  <xsl:template match="/"><r><xsl:call-template name="count"><xsl:with-param name="n" select="400"/></xsl:call-template></r></xsl:template>
</xsl:stylesheet>
