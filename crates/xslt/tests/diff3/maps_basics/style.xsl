<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:array="http://www.w3.org/2005/xpath-functions/array" xmlns:fn="http://www.w3.org/2005/xpath-functions" exclude-result-prefixes="#all">
  <!-- Maps: constructors, lookup, keys, merge, contains, put, remove, size. -->
  <xsl:template match="/antraege">
    <xsl:variable name="m" select="map { 'Wohngeld': 'WG', 'Elterngeld': 'EG', 'BAföG': 'BF' }"/>
    <xsl:variable name="summen" select="map:merge(for $a in antrag return map { string($a/@art): xs:decimal($a/@betrag) }, map { 'duplicates': 'combine' })"/>
    <maps>
      <kuerzel><xsl:value-of select="antrag/$m(@art)"/></kuerzel>
      <lookup><xsl:value-of select="$m?Wohngeld, $m?('BAföG')"/></lookup>
      <keys><xsl:value-of select="sort(map:keys($m))"/></keys>
      <size><xsl:value-of select="map:size($m), map:size(map:remove($m, 'BAföG')), map:size(map:put($m, 'X', 1))"/></size>
      <contains><xsl:value-of select="map:contains($m, 'WG'), map:contains($m, 'Wohngeld'), exists($m?Kindergeld)"/></contains>
      <xsl:for-each select="sort(map:keys($summen))">
        <summe art="{.}" werte="{$summen(.)}" total="{sum($summen(.))}"/>
      </xsl:for-each>
      <zahl-keys><xsl:value-of select="map { 1: 'eins', 2: 'zwei' }(2), map { xs:date('2024-01-01'): 'Neujahr' }(xs:date('2024-01-01'))"/></zahl-keys>
      <entries><xsl:value-of select="for $k in sort(map:keys($m)) return $k || '=' || $m($k)" separator=";"/></entries>
      <for-each><xsl:value-of select="sort(map:for-each($m, function($k, $v) { $v || lower-case(substring($k, 1, 1)) }))"/></for-each>
      <find><xsl:value-of select="map:find([map{'a': 1}, map{'b': map{'a': 2}}], 'a')?*"/></find>
    </maps>
  </xsl:template>
</xsl:stylesheet>
