<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:variable name="list">
    <entry>one</entry>
    <entry>two</entry>
  </xsl:variable>
  <xsl:variable name="num" select="count(//item)"/>
  <xsl:template match="/">
    <xsl:variable name="local"><b>bold</b> text</xsl:variable>
    <r>
      <copy><xsl:copy-of select="$list"/></copy>
      <str><xsl:value-of select="$list"/></str>
      <loc><xsl:copy-of select="$local"/></loc>
      <len><xsl:value-of select="string-length($local)"/></len>
      <n><xsl:value-of select="$num"/></n>
      <xsl:for-each select="//order">
        <xsl:variable name="total" select="sum(item/@qty)"/>
        <o id="{@id}" total="{$total}"/>
      </xsl:for-each>
    </r>
  </xsl:template>
</xsl:stylesheet>
