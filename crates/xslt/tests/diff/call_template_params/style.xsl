<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template name="repeat">
    <xsl:param name="text"/>
    <xsl:param name="n" select="1"/>
    <xsl:if test="$n &gt; 0">
      <xsl:value-of select="$text"/>
      <xsl:call-template name="repeat">
        <xsl:with-param name="text" select="$text"/>
        <xsl:with-param name="n" select="$n - 1"/>
      </xsl:call-template>
    </xsl:if>
  </xsl:template>
  <xsl:template name="fact">
    <xsl:param name="n"/>
    <xsl:choose>
      <xsl:when test="$n &lt;= 1">1</xsl:when>
      <xsl:otherwise>
        <xsl:variable name="sub"><xsl:call-template name="fact"><xsl:with-param name="n" select="$n - 1"/></xsl:call-template></xsl:variable>
        <xsl:value-of select="$n * $sub"/>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>
  <xsl:template match="/">
    <r>
      <a><xsl:call-template name="repeat"><xsl:with-param name="text" select="'ab'"/><xsl:with-param name="n" select="3"/></xsl:call-template></a>
      <b><xsl:call-template name="repeat"><xsl:with-param name="text">x</xsl:with-param></xsl:call-template></b>
      <c><xsl:call-template name="fact"><xsl:with-param name="n" select="10"/></xsl:call-template></c>
    </r>
  </xsl:template>
</xsl:stylesheet>
