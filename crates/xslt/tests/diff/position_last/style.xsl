<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <xsl:for-each select="//item"><i p="{position()}" l="{last()}" first-sku="{../item[1]/@sku}" last-sku="{../item[last()]/@sku}"/></xsl:for-each>
      <xsl:apply-templates select="//order"/>
      <pos><xsl:value-of select="count(//item[position() mod 2 = 0])"/></pos>
    </r>
  </xsl:template>
  <xsl:template match="order"><o p="{position()}" of="{last()}"/></xsl:template>
</xsl:stylesheet>
