<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- XSLT 3.0 conditional content: xsl:where-populated, xsl:on-empty, xsl:on-non-empty. -->
  <xsl:template match="/antraege">
    <r>
      <xsl:for-each select="('offen', 'storniert')">
        <xsl:variable name="s" select="."/>
        <xsl:where-populated>
          <liste status="{$s}">
            <xsl:for-each select="$root/antrag[@status = $s]"><a id="{@id}"/></xsl:for-each>
          </liste>
        </xsl:where-populated>
        <abschnitt status="{$s}">
          <xsl:on-non-empty><kopf>Treffer:</kopf></xsl:on-non-empty>
          <xsl:value-of select="$root/antrag[@status = $s]/@id"/>
          <xsl:on-empty><leer>keine Anträge</leer></xsl:on-empty>
        </abschnitt>
      </xsl:for-each>
    </r>
  </xsl:template>
  <xsl:variable name="root" select="/antraege"/>
</xsl:stylesheet>
