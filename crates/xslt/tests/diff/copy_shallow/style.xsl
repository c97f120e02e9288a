<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="*">
    <xsl:copy>
      <xsl:attribute name="depth"><xsl:value-of select="count(ancestor::*)"/></xsl:attribute>
      <xsl:apply-templates select="@*"/>
      <xsl:apply-templates/>
    </xsl:copy>
  </xsl:template>
  <xsl:template match="@*"><xsl:copy/></xsl:template>
  <xsl:template match="text()"><xsl:copy/></xsl:template>
  <xsl:template match="comment()"><xsl:copy/></xsl:template>
</xsl:stylesheet>
