<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <xsl:for-each select="//item[@sku='B-7']">
        <i prev="{count(preceding-sibling::item)}" next="{count(following-sibling::item)}" anc="{count(ancestor::*)}" order="{ancestor::order/@id}" pre="{count(preceding::item)}" fol="{count(following::item)}"/>
      </xsl:for-each>
      <desc><xsl:value-of select="count(/descendant-or-self::node())"/></desc>
    </r>
  </xsl:template>
</xsl:stylesheet>
