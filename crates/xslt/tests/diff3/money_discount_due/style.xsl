<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- Discount, gross amount and due date: decimal arithmetic and date + duration. -->
  <xsl:template match="/rechnung">
    <xsl:variable name="netto" select="sum(position/(xs:decimal(menge) * xs:decimal(einzelpreis)))"/>
    <xsl:variable name="rabatt" select="round($netto * xs:decimal(rabatt/@prozent) div 100, 2)"/>
    <xsl:variable name="ust" select="sum(for $p in position return round(xs:decimal($p/menge) * xs:decimal($p/einzelpreis) * xs:decimal($p/@ust) div 100, 2))"/>
    <bescheid>
      <rabatt><xsl:value-of select="$rabatt"/></rabatt>
      <brutto><xsl:value-of select="$netto - $rabatt + $ust"/></brutto>
      <faellig><xsl:value-of select="xs:date(@datum) + xs:dayTimeDuration('P' || @faellig-tage || 'D')"/></faellig>
      <naechster-monat><xsl:value-of select="xs:date(@datum) + xs:yearMonthDuration('P1M')"/></naechster-monat>
      <vorjahr><xsl:value-of select="xs:date(@datum) - xs:yearMonthDuration('P1Y')"/></vorjahr>
      <mod a="{-7 mod 3}" b="{7.5 mod 2}" c="{-7 idiv 2}" d="{abs(-0.50)}" e="{floor(-2.5)}" f="{ceiling(2.01)}"/>
    </bescheid>
  </xsl:template>
</xsl:stylesheet>
