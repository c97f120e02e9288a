<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:decimal-format name="de" decimal-separator="," grouping-separator="."/>
  <xsl:template match="/">
    <r>
      <xsl:for-each select="//item">
        <p sku="{@sku}" en="{format-number(@price * @qty, '#,##0.00')}" de="{format-number(@price * @qty, '#.##0,00', 'de')}" int="{format-number(@qty, '000')}"/>
      </xsl:for-each>
      <sum><xsl:value-of select="format-number(sum(//item/@price), '#,##0.0##')"/></sum>
      <min><xsl:value-of select="format-number(0.75, '0.##')"/></min>
      <neg><xsl:value-of select="format-number(-1234.5, '#,##0.00')"/></neg>
      <big><xsl:value-of select="format-number(9876543.21, '#,###')"/></big>
      <nan><xsl:value-of select="format-number('abc', '0.00')"/></nan>
    </r>
  </xsl:template>
</xsl:stylesheet>
