<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <xsl:for-each select="//item">
        <xsl:choose>
          <xsl:when test="@price &gt; 100"><expensive sku="{@sku}"/></xsl:when>
          <xsl:when test="@qty &gt;= 3"><bulk sku="{@sku}"/></xsl:when>
          <xsl:otherwise><normal sku="{@sku}"/></xsl:otherwise>
        </xsl:choose>
        <xsl:if test="position() = last()"><last/></xsl:if>
        <xsl:if test="not(@missing)"><no-missing/></xsl:if>
      </xsl:for-each>
      <xsl:choose><xsl:when test="false()"><no/></xsl:when></xsl:choose>
    </r>
  </xsl:template>
</xsl:stylesheet>
