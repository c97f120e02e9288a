<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:array="http://www.w3.org/2005/xpath-functions/array" xmlns:fn="http://www.w3.org/2005/xpath-functions" exclude-result-prefixes="#all">
  <!-- Arrays: square and curly constructors, lookup, size, members, append, subarray, flatten. -->
  <xsl:template match="/antraege">
    <xsl:variable name="a" select="array { antrag/string(@id) }"/>
    <xsl:variable name="b" select="[ (1, 2), 3, [4, 5] ]"/>
    <arrays>
      <size><xsl:value-of select="array:size($a), array:size($b), array:size([])"/></size>
      <get><xsl:value-of select="$a(2), $a?3, array:get($a, 6)"/></get>
      <all><xsl:value-of select="$a?*" separator=","/></all>
      <nested><xsl:value-of select="count($b?1), $b?3?2"/></nested>
      <flat><xsl:value-of select="array:flatten($b)"/></flat>
      <append><xsl:value-of select="array:append($a, 'A-007')?*[last()]"/></append>
      <sub><xsl:value-of select="array:subarray($a, 2, 3)?*"/></sub>
      <head-tail><xsl:value-of select="array:head($a), array:size(array:tail($a))"/></head-tail>
      <reverse><xsl:value-of select="array:reverse($a)?1"/></reverse>
      <join><xsl:value-of select="array:size(array:join(($a, $b)))"/></join>
      <for-each><xsl:value-of select="array:for-each([1, 2, 3], function($x) { $x * 10 })?*"/></for-each>
      <filter><xsl:value-of select="array:filter($a, function($x) { ends-with($x, '1') or ends-with($x, '5') })?*"/></filter>
      <string><xsl:value-of select="string-join(array { 1 to 3 }?* ! string(), '-')"/></string>
    </arrays>
  </xsl:template>
</xsl:stylesheet>
