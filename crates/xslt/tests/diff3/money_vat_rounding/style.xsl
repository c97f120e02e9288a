<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- VAT per rate, commercial rounding (round) versus banker's rounding (round-half-to-even). -->
  <xsl:template match="/rechnung">
    <ust>
      <xsl:for-each select="distinct-values(position/@ust)">
        <xsl:sort select="." data-type="number"/>
        <xsl:variable name="satz" select="xs:decimal(.)"/>
        <xsl:variable name="basis" select="sum($root/position[@ust = current()]/(xs:decimal(menge) * xs:decimal(einzelpreis)))"/>
        <satz prozent="{.}" basis="{$basis}"
              kaufmaennisch="{round($basis * $satz div 100, 2)}"
              bankers="{round-half-to-even($basis * $satz div 100, 2)}"/>
      </xsl:for-each>
      <halb a="{round(2.345, 2)}" b="{round-half-to-even(2.345, 2)}" c="{round(-2.5)}" d="{round-half-to-even(-2.5)}" e="{round(1234.5, -2)}"/>
    </ust>
  </xsl:template>
  <xsl:variable name="root" select="/rechnung"/>
</xsl:stylesheet>
