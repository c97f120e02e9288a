<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- A routing table passed as a string parameter (key=value pairs), turned into a map. -->
  <xsl:param name="routen" as="xs:string" select="''"/>
  <xsl:param name="standard" as="xs:string" select="'poststelle'"/>
  <xsl:param name="max-betrag" as="xs:decimal" select="1000"/>
  <xsl:variable name="tabelle" as="map(xs:string, xs:string)"
                select="map:merge(for $e in tokenize($routen, '\s*;\s*')[contains(., '=')] return map { normalize-space(substring-before($e, '=')): normalize-space(substring-after($e, '=')) })"/>
  <xsl:template match="/antraege">
    <verteilung>
      <xsl:for-each select="antrag">
        <xsl:variable name="land" select="substring(@ags, 1, 2)"/>
        <xsl:variable name="ziel" select="($tabelle($land || '/' || @art), $tabelle($land), $standard)[1]"/>
        <an ziel="{$ziel}" id="{@id}" pruefen="{xs:decimal(@betrag) gt $max-betrag}"/>
      </xsl:for-each>
    </verteilung>
  </xsl:template>
</xsl:stylesheet>
