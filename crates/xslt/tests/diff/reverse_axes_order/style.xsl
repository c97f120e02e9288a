<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <xsl:for-each select="//c">
        <anc><xsl:for-each select="ancestor-or-self::*"><xsl:value-of select="name()"/>,</xsl:for-each></anc>
        <pre><xsl:for-each select="preceding::*"><xsl:value-of select="name()"/>,</xsl:for-each></pre>
        <sib><xsl:for-each select="preceding-sibling::*"><xsl:value-of select="name()"/>,</xsl:for-each></sib>
        <nearest><xsl:value-of select="name(preceding-sibling::*[1])"/></nearest>
        <xsl:apply-templates select="ancestor::*"/>
      </xsl:for-each>
    </r>
  </xsl:template>
  <xsl:template match="*"><a n="{name()}" p="{position()}"/></xsl:template>
</xsl:stylesheet>
