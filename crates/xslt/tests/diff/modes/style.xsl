<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <toc><xsl:apply-templates select="//order" mode="toc"/></toc>
      <body><xsl:apply-templates select="//order"/></body>
      <none><xsl:apply-templates select="//customer" mode="unknown"/></none>
    </r>
  </xsl:template>
  <xsl:template match="order" mode="toc"><entry ref="{@id}"/></xsl:template>
  <xsl:template match="order"><section id="{@id}"><xsl:apply-templates select="item" mode="line"/></section></xsl:template>
  <xsl:template match="item" mode="line"><line><xsl:value-of select="."/></line></xsl:template>
</xsl:stylesheet>
