<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:array="http://www.w3.org/2005/xpath-functions/array" xmlns:fn="http://www.w3.org/2005/xpath-functions" exclude-result-prefixes="#all">
  <!-- JSON text out of a map with serialize(method json); key order is implementation-dependent so only single-key maps and arrays. -->
  <xsl:output method="text"/>
  <xsl:template match="/nachricht">
    <xsl:value-of select="serialize([1, 'zwei', true(), (), [3.5]], map { 'method': 'json' })"/>
    <xsl:text>&#10;</xsl:text>
    <xsl:value-of select="serialize(map { 'ort': 'Köln &quot;Altstadt&quot;/Nord' }, map { 'method': 'json' })"/>
    <xsl:text>&#10;</xsl:text>
    <xsl:value-of select="serialize(parse-json(payload)?personen?1?name, map { 'method': 'json' })"/>
    <xsl:text>&#10;</xsl:text>
  </xsl:template>
</xsl:stylesheet>
