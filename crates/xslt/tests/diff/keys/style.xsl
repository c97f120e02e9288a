<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:key name="cust" match="customer" use="@id"/>
  <xsl:key name="by-sku" match="item" use="@sku"/>
  <xsl:key name="multi" match="order" use="item/@sku"/>
  <xsl:template match="/">
    <r>
      <xsl:for-each select="//order">
        <o id="{@id}" who="{key('cust', @customer)}"/>
      </xsl:for-each>
      <lamps><xsl:value-of select="count(key('by-sku', 'B-7'))"/></lamps>
      <xsl:for-each select="key('multi', 'A-1')"><with-a1 id="{@id}"/></xsl:for-each>
      <set><xsl:value-of select="count(key('by-sku', //order[1]/item/@sku))"/></set>
      <none><xsl:value-of select="count(key('by-sku', 'nope'))"/></none>
    </r>
  </xsl:template>
</xsl:stylesheet>
