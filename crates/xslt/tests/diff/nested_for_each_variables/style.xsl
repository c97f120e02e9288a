<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <xsl:for-each select="//customer">
        <xsl:variable name="cid" select="@id"/>
        <c name="{.}">
          <xsl:for-each select="//order[@customer = $cid]">
            <xsl:variable name="oid" select="@id"/>
            <xsl:for-each select="item">
              <line order="{$oid}" sku="{@sku}" pos="{position()}"/>
            </xsl:for-each>
          </xsl:for-each>
        </c>
      </xsl:for-each>
    </r>
  </xsl:template>
</xsl:stylesheet>
