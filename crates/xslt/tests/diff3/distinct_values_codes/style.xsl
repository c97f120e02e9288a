<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- distinct-values on strings, numbers, dates; order of first occurrence, then sorted. -->
  <xsl:template match="/antraege">
    <werte>
      <arten><xsl:value-of select="distinct-values(antrag/@art)"/></arten>
      <sortiert><xsl:value-of select="sort(distinct-values(antrag/@status))"/></sortiert>
      <ags n="{count(distinct-values(antrag/@ags))}"/>
      <zahlen><xsl:value-of select="distinct-values((1, 1.0, 2e0, xs:decimal('2'), 3, '3'))"/></zahlen>
      <tage><xsl:value-of select="distinct-values(antrag/xs:date(@eingang))"/></tage>
      <namen><xsl:value-of select="distinct-values(antrag/name) => count()"/></namen>
      <doppelt><xsl:value-of select="antrag[let $n := name return count(../antrag[name = $n]) gt 1]/@id"/></doppelt>
    </werte>
  </xsl:template>
</xsl:stylesheet>
