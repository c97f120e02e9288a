<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:array="http://www.w3.org/2005/xpath-functions/array" xmlns:fn="http://www.w3.org/2005/xpath-functions" exclude-result-prefixes="#all">
  <!-- xsl:map / xsl:map-entry building an index keyed by id, then lookups. -->
  <xsl:template match="/antraege">
    <xsl:variable name="index" as="map(xs:string, element(antrag))">
      <xsl:map>
        <xsl:for-each select="antrag">
          <xsl:map-entry key="string(@id)" select="."/>
        </xsl:for-each>
      </xsl:map>
    </xsl:variable>
    <xsl:variable name="zaehler" as="map(*)">
      <xsl:map>
        <xsl:for-each select="distinct-values(antrag/@status)">
          <xsl:map-entry key="." select="count($root/antrag[@status = current()])"/>
        </xsl:for-each>
      </xsl:map>
    </xsl:variable>
    <r>
      <a><xsl:value-of select="$index('A-004')/name"/></a>
      <b><xsl:value-of select="$index?('A-002', 'A-006') ! vorname"/></b>
      <c><xsl:value-of select="for $k in sort(map:keys($zaehler)) return $k || ':' || $zaehler($k)"/></c>
      <d><xsl:value-of select="map:size($index)"/></d>
    </r>
  </xsl:template>
  <xsl:variable name="root" select="/antraege"/>
</xsl:stylesheet>
