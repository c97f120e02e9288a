<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:array="http://www.w3.org/2005/xpath-functions/array" xmlns:fn="http://www.w3.org/2005/xpath-functions" exclude-result-prefixes="#all">
  <!-- parse-json gives maps and arrays; a JSON routing table keyed by state prefix. -->
  <xsl:template match="/nachricht">
    <xsl:variable name="p" select="parse-json(payload)"/>
    <xsl:variable name="route" select="parse-json(routing)"/>
    <r>
      <a><xsl:value-of select="$p?vorgang, $p?betrag, $p?prioritaet, $p?eilig"/></a>
      <b><xsl:value-of select="$p?betrag instance of xs:double, $p?eilig instance of xs:boolean, empty($p?bemerkung), map:contains($p, 'bemerkung')"/></b>
      <c><xsl:value-of select="$p?personen?*?name" separator=", "/></c>
      <d><xsl:value-of select="array:size($p?tags), $p?tags?2, $p?pfad"/></d>
      <e><xsl:value-of select="$p?zitat"/></e>
      <f><xsl:value-of select="for $k in ('09', '05', '11', '99') return $k || '->' || (let $z := $route($k) return if ($z instance of map(*)) then $z?ziel || '/' || $z?kanal else if (exists($z)) then $z else 'default')" separator=" "/></f>
      <g><xsl:value-of select="parse-json('[1, 2.50, -3e2, 1E400]')?* ! string()" separator=" "/></g>
      <h><xsl:value-of select="parse-json('{&quot;a&quot;: 1, &quot;a&quot;: 2}', map { 'duplicates': 'use-last' })?a"/></h>
    </r>
  </xsl:template>
</xsl:stylesheet>
