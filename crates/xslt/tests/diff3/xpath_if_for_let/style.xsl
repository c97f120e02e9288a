<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" exclude-result-prefixes="#all">
  <!-- XPath 2.0/3.0 expressions: if, for, let, the simple map operator and the arrow operator. -->
  <xsl:template match="/antraege">
    <x>
      <a><xsl:value-of select="for $a in antrag return if ($a/@status = 'offen') then $a/@id else ()"/></a>
      <b><xsl:value-of select="let $s := sum(antrag/@betrag), $n := count(antrag) return round($s div $n, 2)"/></b>
      <c><xsl:value-of select="for $i in 1 to 3, $j in ('a', 'b') return $i || $j"/></c>
      <d><xsl:value-of select="antrag ! (@id || ':' || string-length(name))"/></d>
      <e><xsl:value-of select="antrag/name => string-join('/') => upper-case()"/></e>
      <f><xsl:value-of select="(antrag/@betrag[. > 1000]) => count()"/></f>
      <g><xsl:value-of select="if (antrag[@status = 'storniert']) then 'ja' else 'nein'"/></g>
      <h><xsl:value-of select="let $x := 5 return let $x := $x * 2 return $x"/></h>
      <i><xsl:value-of select="(antrag/@betrag ! xs:decimal(.))[. gt 500] => sum()"/></i>
    </x>
  </xsl:template>
</xsl:stylesheet>
