<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:key name="items-by-sku" match="item" use="@sku"/>
  <xsl:template match="/">
    <r>
      <xsl:for-each select="//item[generate-id() = generate-id(key('items-by-sku', @sku)[1])]">
        <xsl:sort select="@sku"/>
        <group sku="{@sku}" count="{count(key('items-by-sku', @sku))}" qty="{sum(key('items-by-sku', @sku)/@qty)}"/>
      </xsl:for-each>
    </r>
  </xsl:template>
</xsl:stylesheet>
