<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <r>
      <s1><xsl:value-of select="concat(substring('Drehscheibe', 1, 4), '-', substring('Drehscheibe', 5))"/></s1>
      <s2><xsl:value-of select="normalize-space('  a   b  c ')"/></s2>
      <s3><xsl:value-of select="string-length(//customer[1])"/></s3>
      <s4><xsl:value-of select="substring-before('2024-05-01', '-')"/>/<xsl:value-of select="substring-after('2024-05-01', '-')"/></s4>
      <s5><xsl:value-of select="starts-with(//order[1]/@id, 'o')"/>,<xsl:value-of select="contains('abc', 'd')"/></s5>
      <n1><xsl:value-of select="sum(//item/@qty)"/></n1>
      <n2><xsl:value-of select="round(2.6)"/>,<xsl:value-of select="floor(2.6)"/>,<xsl:value-of select="ceiling(2.1)"/></n2>
      <n3><xsl:value-of select="count(//item[@price &gt; 10])"/></n3>
      <n4><xsl:value-of select="10 mod 3"/>,<xsl:value-of select="7 div 2"/>,<xsl:value-of select="-(3)"/></n4>
      <b1><xsl:value-of select="boolean(//nothing)"/>,<xsl:value-of select="not(true())"/></b1>
      <nm><xsl:value-of select="name(/*)"/>,<xsl:value-of select="local-name(//item[1])"/></nm>
      <tr><xsl:value-of select="translate('hello', 'lo', 'LO')"/></tr>
      <num><xsl:value-of select="number('42') + 1"/></num>
    </r>
  </xsl:template>
</xsl:stylesheet>
