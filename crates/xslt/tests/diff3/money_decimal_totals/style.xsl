<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Invoice totals in xs:decimal: no binary floating point drift. -->
  <xsl:template match="/rechnung">
    <summe>
      <xsl:for-each select="position">
        <pos nr="{@nr}" netto="{xs:decimal(menge) * xs:decimal(einzelpreis)}"/>
      </xsl:for-each>
      <xsl:variable name="netto" as="xs:decimal" select="sum(position/(xs:decimal(menge) * xs:decimal(einzelpreis)))"/>
      <netto><xsl:value-of select="$netto"/></netto>
      <netto-gerundet><xsl:value-of select="round($netto, 2)"/></netto-gerundet>
      <drift double="{0.1e0 + 0.2e0}" decimal="{0.1 + 0.2}"/>
      <typ><xsl:value-of select="($netto instance of xs:decimal, (7 div 2) instance of xs:decimal, (7 idiv 2) instance of xs:integer)"/></typ>
    </summe>
  </xsl:template>
</xsl:stylesheet>
